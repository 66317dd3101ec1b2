"""The starter board library: definitions and the pictures it ships (see images/LICENSE.md)."""
