// Every test file runs as a Node user of the package does: through the Node
// entry, which gives the runtime Dawn and folder reading.
import '../src/node';
