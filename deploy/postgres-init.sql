-- One database per service (docker-compose); the local devstack creates the same.
CREATE DATABASE paykit_order;
CREATE DATABASE paykit_payment;
CREATE DATABASE paykit_gateway;
