"""gis package of Shenzhen Twin."""
