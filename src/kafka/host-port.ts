// A broker's advertised "host:port" as the Kafka protocol carries it: host and port apart.

export function hostPort(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
}
