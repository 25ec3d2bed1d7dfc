"""Training-loop components: hooks, optimizer constructors."""
