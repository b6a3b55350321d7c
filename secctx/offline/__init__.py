"""Builds from package registries (Go module proxy, Debian): the offline kind
node image and what goes into it, kind itself, the capability shim.

Offline mode (no container registry reachable) uses all of it. Online runs use
parts of it too: kind is built here unless a recent one is on PATH, the
capability shim when this host's bounding set needs it, the myapp image
(secctx.images.build) compiles with gobuild, and `log` prints progress. Only
the node image is never built online: it is kindest/node, pulled by kind.
"""
