"""Offline mode: build a kind node image and workload images from package registries.

Used when no container registry is reachable. Online users never touch this
package: they get kindest/node and the real images, pulled.
"""
