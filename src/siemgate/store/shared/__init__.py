"""SQL written once for both backends, one module per aggregate."""
