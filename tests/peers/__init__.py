"""Test peers: real servers we did not write, and our own side of a protocol, for tests."""
