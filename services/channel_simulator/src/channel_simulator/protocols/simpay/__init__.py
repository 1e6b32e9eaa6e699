"""simpay, the sandbox's own channel protocol (see channel_simulator/app.py for the API).

signing.py: how messages are signed; wire.py: signed requests, answers and
refusals; views.py: the JSON bodies; charges.py, refunds.py, payouts.py: the
handlers; protocol.py: the plugin (routes, notifications, acknowledgement).
"""

from channel_simulator.protocols.simpay.protocol import SimpayProtocol

__all__ = ["SimpayProtocol"]
