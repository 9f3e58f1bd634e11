# The gridpilot image: one CLI, run as the server, the gateway, the simulator or a
# daemon by docker-compose.yml's `command:`.
FROM python:3.11-slim-bookworm

WORKDIR /opt/gridpilot
COPY . .
RUN pip install --no-cache-dir . \
 && useradd --system --create-home --home-dir /var/lib/gridpilot gridpilot

USER gridpilot
ENV GRIDPILOT_SITE=/etc/gridpilot/site.toml
VOLUME /var/lib/gridpilot
EXPOSE 8765
ENTRYPOINT ["gridpilot"]
CMD ["serve", "--host=0.0.0.0", "--port=8765"]
