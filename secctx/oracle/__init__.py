"""What Kubernetes promises for a case on a node: the facts learned from the
node, image and runtime, the process and volume rules, refusals."""
