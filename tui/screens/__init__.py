"""One module per wizard screen; each screen's styles live beside it in a .tcss file."""
