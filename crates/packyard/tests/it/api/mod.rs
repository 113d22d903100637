mod distributions;
mod gpg_keys;
mod packages;
mod push_errors;
mod repos;
