"""scenarios package of Shenzhen Twin."""
