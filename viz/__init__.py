"""viz package of Shenzhen Twin."""
