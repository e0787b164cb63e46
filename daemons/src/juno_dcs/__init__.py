"""JUNO distributed computing on Rucio."""
