"""The channel protocols the sandbox speaks, each on the neutral core (operations.py).

base.py is the plugin interface; simpay/ is the sandbox's own protocol. A
protocol is enabled by registering it in app.PROTOCOLS.
"""
