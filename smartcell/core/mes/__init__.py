"""ISA-95 records, OEE, the hash-chained audit trail, MES bridge parameters."""
