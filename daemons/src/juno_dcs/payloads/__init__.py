"""JUNO's toy but real payloads: detsim, elecsim, cal and rec on ROOT files (uproot)."""
