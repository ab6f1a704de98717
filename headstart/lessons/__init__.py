"""The lessons' sweeps over one protocol, their plots, and the checks of what each teaches."""
