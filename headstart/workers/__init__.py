"""Training workers behind one interface: processes on this machine, or Ray actors."""
