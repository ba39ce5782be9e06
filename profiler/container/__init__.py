"""Running bench sessions in a Docker container: engine I/O, image build, pure run planning."""
