mod apt;
mod dsc;
mod ftparchive;
mod http;
mod pool_names;
mod raw;
mod yum;
