"""Dispatch: fleet, dispatch queue, wave planning (vehicle routing) and route tracking."""
