"""MicroPython firmware for the ESP12F 4-relay board, and its pure protocol logic."""
