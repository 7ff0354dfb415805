"""q2-mgm: MGM, the Microbial General Model, as a QIIME 2 plugin."""
__version__ = "0.1.0"
