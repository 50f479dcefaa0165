mod test_lifecycle;
mod test_market;
mod test_worker;
mod test_job_claim;
mod test_job_post;
