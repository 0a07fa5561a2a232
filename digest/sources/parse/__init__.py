"""Pure parsers: bytes or text of one listing in, a Listing of papers out. No I/O here."""
