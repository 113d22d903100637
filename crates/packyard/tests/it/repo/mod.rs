mod apt;
mod dsc;
mod ftparchive;
mod http;
mod pool_names;
mod pypi;
mod raw;
mod yum;
