"""The capture: payment.events and refund.events -> internal records, with faust-streaming.

`python -m reconciliation.capture` runs it as its own worker process (the local suite does);
`python -m reconciliation serve` runs the same app inside the service unless
RECON_CAPTURE_IN_PROCESS=false (one container per service in compose and the charts).
"""
