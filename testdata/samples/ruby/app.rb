# A small sinatra app: GET / answers a JSON body; sinatra traps SIGTERM itself (it runs as PID 1).
require 'sinatra'
require 'json'

set :bind, '0.0.0.0'
set :port, Integer(ENV.fetch('PORT', '8080'))
set :server, 'webrick'

get '/' do
  content_type :json
  { app: 'ruby', status: 'ok' }.to_json
end
