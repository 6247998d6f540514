"""hardware_bridge package of Shenzhen Twin."""
