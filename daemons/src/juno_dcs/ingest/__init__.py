"""The raw-data ingestor: SPADE's "file arrived" messages from Kafka -> Rucio replicas in daily blocks."""
