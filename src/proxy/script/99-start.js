// Last part: open the channel.
connect();
