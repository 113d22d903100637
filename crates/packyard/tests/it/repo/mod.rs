mod apt;
mod ftparchive;
mod http;
