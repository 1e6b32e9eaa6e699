-- docker-compose.yml: one database per service, each owned by its own login role,
-- so no service can read another's tables (ARCHITECTURE.md §1). The postgres
-- image runs this once, on an empty data volume, before it accepts TCP
-- connections. The local devstack creates the same databases (paykit.devstack.suite).
-- The passwords are for a local compose stack only; real deployments take the
-- credentials from their secret store.
CREATE ROLE paykit_order LOGIN PASSWORD 'order-local-only';
CREATE DATABASE paykit_order OWNER paykit_order;
REVOKE ALL ON DATABASE paykit_order FROM PUBLIC;

CREATE ROLE paykit_payment LOGIN PASSWORD 'payment-local-only';
CREATE DATABASE paykit_payment OWNER paykit_payment;
REVOKE ALL ON DATABASE paykit_payment FROM PUBLIC;

CREATE ROLE paykit_gateway LOGIN PASSWORD 'gateway-local-only';
CREATE DATABASE paykit_gateway OWNER paykit_gateway;
REVOKE ALL ON DATABASE paykit_gateway FROM PUBLIC;

CREATE ROLE paykit_accounting LOGIN PASSWORD 'accounting-local-only';
CREATE DATABASE paykit_accounting OWNER paykit_accounting;
REVOKE ALL ON DATABASE paykit_accounting FROM PUBLIC;

CREATE ROLE paykit_notification LOGIN PASSWORD 'notification-local-only';
CREATE DATABASE paykit_notification OWNER paykit_notification;
REVOKE ALL ON DATABASE paykit_notification FROM PUBLIC;

CREATE ROLE paykit_reconciliation LOGIN PASSWORD 'reconciliation-local-only';
CREATE DATABASE paykit_reconciliation OWNER paykit_reconciliation;
REVOKE ALL ON DATABASE paykit_reconciliation FROM PUBLIC;
