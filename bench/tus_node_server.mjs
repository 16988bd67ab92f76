// The peer: @tus/server with @tus/file-store, as its README sets it up, on a free port.
// usage: node tus_node_server.mjs DATA_DIR   (prints "listening PORT" when ready)
import http from 'node:http'
import {Server} from '@tus/server'
import {FileStore} from '@tus/file-store'

const directory = process.argv[2]
const tus = new Server({path: '/files', datastore: new FileStore({directory})})
const server = http.createServer((req, res) => tus.handle(req, res))
server.listen(0, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`)
})
process.on('SIGTERM', () => server.close(() => process.exit(0)))
