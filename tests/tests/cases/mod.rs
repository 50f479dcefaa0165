mod test_lifecycle;
mod test_market;
mod test_worker;
