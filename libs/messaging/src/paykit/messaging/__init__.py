"""Events in and out: envelope, transactional outbox + relay, inbox + consumer loop, topics."""
