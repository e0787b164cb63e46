"""The grid in a box: one home directory holding a whole Rucio deployment and its services."""
