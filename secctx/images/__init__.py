"""Images: which ones a run needs, where they come from, how they reach the nodes.

- secctx.images.imagemap (the map): recipe image reference -> image the suite runs,
  per mode, from fixtures/images.yaml (+ --secctx-image-map); ImageMap.rewrite maps
  a manifest's images (offline also `imagePullPolicy: Never`).
- build: the images the suite builds, and their recipes: workload images
  (myapp, the offline stand-ins, the recipe's USER 1000 nginx rebuild) and the
  offline node image's control-plane images.
- load: a run's images into the local Docker engine (built, pulled online,
  checked), then into the kind nodes.
- docker: the docker CLI wrappers the builds use (inputs-keyed `build`).

The node image itself is assembled in secctx.offline.nodeimage (offline) or
is kindest/node (online, pulled by kind).
"""
