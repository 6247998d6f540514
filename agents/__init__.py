"""agents package of Shenzhen Twin."""
