mod test_lifecycle;
