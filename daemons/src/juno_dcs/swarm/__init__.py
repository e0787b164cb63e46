"""The grid on Docker Swarm: a Docker engine, the grid's images, and its programs as one stack (docs/deploy.md)."""
