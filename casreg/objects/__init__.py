"""Content-addressed objects: chunks, file manifests, trees and commits in LMDB."""
