mod cli_replay;
mod distributions;
mod gpg_keys;
mod listing;
mod packages;
mod push_errors;
mod push_groups;
mod repos;
