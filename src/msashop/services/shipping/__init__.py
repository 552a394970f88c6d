"""The shipping service: prices delivery over the bus (`shipping.calculate` RPC)."""
