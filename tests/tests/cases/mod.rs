mod test_lifecycle;
mod test_market;
