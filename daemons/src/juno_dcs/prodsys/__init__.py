"""The production manager (ProdSys): steering files, data-driven steps detsim -> elecsim -> cal -> rec."""
