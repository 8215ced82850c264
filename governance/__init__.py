"""From recommendation to verified transactions and reports; all I/O lives here."""
