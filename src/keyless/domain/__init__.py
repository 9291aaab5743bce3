"""Plain data and the ports (Protocols) through which services reach storage. No I/O here."""
