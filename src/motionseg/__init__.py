"""motionseg: reproducible companion to Farazi & Behnke, ESANN 2020."""
__version__ = "0.1.0"
