mod apt;
mod ftparchive;
mod http;
mod yum;
