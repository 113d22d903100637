mod distributions;
mod packages;
mod push_errors;
mod repos;
